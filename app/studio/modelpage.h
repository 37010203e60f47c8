// The Model page (SPEC "Model in the loop", in the studio): a ViT with merging inside it. One
// image: the unmerged and merged predictions side by side, live as the merge's parameters move
// (jobs on the "model" lane, each superseding the last); tokens, FLOPs and time per block; and
// overlays at a chosen block (sources as ToMe draws them, QuickMerge++'s saliency, the class
// token's attention, attention rollout, a clicked token's attention per head) with the rank
// correlation of the saliency against the other two. A labelled set: every method over a range
// of r or budgets (ModelSweepPanel).
#pragma once

#include "jobs.h"
#include "modelview.h"

#include "qmpp/evaluate.h"
#include "qmpp/explain.h"
#include "qmpp/modelinput.h"
#include "qmpp/vit.h"

#include <QWidget>

#include <memory>

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QSlider;
class QSpinBox;
class QTabWidget;

namespace studio {

class ModelCanvas;
class ModelSweepPanel;

class ModelPage : public QWidget {
    Q_OBJECT
  public:
    explicit ModelPage(JobOwner* jobs, QWidget* parent = nullptr);
    ~ModelPage() override;

    // The bundled files: a model in resources/models (installed: share/qmpp/models; the
    // environment's QMPP_MODELS first), and the Fashion-MNIST test set of Debian's
    // dataset-fashion-mnist. Empty when absent.
    static QString bundledModelPath(const QString& file = QStringLiteral("vit-fmnist.safetensors"));
    static QString bundledTestSet();

    // Loads a converted ViT (.safetensors, timm names); false with the loader's message naming
    // the file. Keeps the image when its size fits, else opens the set's first item.
    bool openModel(const QString& path, QString* error = nullptr);
    bool openBundledModel(QString* error = nullptr);
    bool hasModel() const { return bool(m_model); }
    std::shared_ptr<const qmpp::VitModel> model() const { return m_model; }
    const qmpp::VitConfig* modelConfig() const;
    QString modelPath() const { return m_modelPath; }

    // The labelled set: an IDX folder (`dataset`) or a folder of images labelled by subfolder;
    // `limit` first items (0: all). The image view's item spinner walks it.
    bool openSet(const QString& path, bool dataset, qmpp::i64 limit, QString* error = nullptr);
    bool openBundledSet(qmpp::i64 limit = 500, QString* error = nullptr);
    std::shared_ptr<const qmpp::EvalItems> set() const { return m_set; }

    // The image: item `index` of the set, or any image file (preprocessed as the model says).
    bool openSetItem(int index);
    bool openImage(const QString& path, QString* error = nullptr);
    QString imageName() const { return m_imageName; }
    int imageLabel() const { return m_imageLabel; } // -1 unknown

    // The merge's parameters (method, schedule, tau, epsilon, Gumbel scale, seed). Setting
    // them reruns.
    qmpp::HookParams params() const;
    void setParams(const qmpp::HookParams& hp);

    // Overlays at a block; a click (or clickPatch) picks the token whose attention is drawn.
    void setOverlay(ModelOverlay o);
    void setBlock(int block);
    void setFusion(qmpp::HeadFusion f);
    void setDiscard(double ratio);
    void setHead(int head); // -1: mean over heads
    void clickPatch(int patch);
    ModelOverlay overlay() const;
    int block() const;
    int clickedPatch() const { return m_patch; }

    // What is on screen: the last finished run. `serial` counts results shown.
    struct Shown {
        qmpp::HookParams hp;
        qmpp::ForwardResult plain, merged;
        qmpp::ForwardTrace trace; // of the merged forward
        qmpp::Rollout rollout;
        qmpp::SaliencyAgreement agreement;
        QString image;
    };
    const Shown* shown() const { return m_shown.get(); }
    int shownCount() const { return m_shownCount; }
    // Runs the image through the model with the current parameters (superseding the last run).
    quint64 rerun();
    QImage overlayImage() const; // what the canvas shows
    // The report's model section: `dir`/model (the shown image at the shown setting, as `qmpp
    // eval --overlays 1` writes it) and `dir`/model-sweep (the labelled set's sweep), each
    // written whole or not at all. Nothing without a model; throws with the file on failure.
    void writeReportSection(const QString& dir) const;

    QTabWidget* views() const { return m_views; }
    ModelSweepPanel* sweepPanel() const { return m_sweep; }
    QCustomPlot* predictionPlot() const { return m_predPlot; }
    QCustomPlot* blockPlot() const { return m_blockPlot; }
    QCustomPlot* agreementPlot() const { return m_agreePlot; }
    QLabel* predictionText() const { return m_predText; }
    QLabel* correlationText() const { return m_corrText; }
    QSlider* blockSlider() const { return m_blockSlider; }
    QSpinBox* rBox() const { return m_r; }
    QComboBox* methodBox() const { return m_method; }

  signals:
    void message(const QString& text); // for the status bar
    void sourceChanged();              // another model or set

  private:
    QWidget* buildImageView();
    void paramsChanged();
    void showShown();
    void refreshOverlay();
    void plotPrediction();
    void plotBlocks();
    void plotAgreement();
    void fail(const QString& what);
    void setScheduleMode(int mode);

    JobOwner* m_jobs;
    std::shared_ptr<const qmpp::VitModel> m_model;
    QString m_modelPath;
    std::shared_ptr<const qmpp::EvalItems> m_set;
    QString m_setPath;
    std::shared_ptr<const std::vector<float>> m_pixels; // the image, normalized [C, H, W]
    QString m_imageName;
    int m_imageLabel = -1;
    quint64 m_imageSerial = 0;
    // the plain forward of the current image, computed once
    std::shared_ptr<const qmpp::ForwardResult> m_plain;
    quint64 m_plainSerial = 0;
    std::unique_ptr<Shown> m_shown;
    int m_shownCount = 0;
    int m_patch = -1;
    bool m_quiet = false; // while setting several controls at once

    QTabWidget* m_views = nullptr;
    QLabel *m_modelName = nullptr, *m_imageInfo = nullptr, *m_predText = nullptr,
           *m_corrText = nullptr, *m_blockLabel = nullptr;
    QSpinBox *m_item = nullptr, *m_r = nullptr, *m_atBlock = nullptr, *m_seed = nullptr;
    QComboBox *m_method = nullptr, *m_mode = nullptr, *m_overlay = nullptr, *m_fusion = nullptr,
              *m_head = nullptr;
    QDoubleSpinBox *m_budget = nullptr, *m_tau = nullptr, *m_eps = nullptr, *m_gumbel = nullptr,
                   *m_discard = nullptr;
    QSlider* m_blockSlider = nullptr;
    ModelCanvas* m_canvas = nullptr;
    QCustomPlot *m_predPlot = nullptr, *m_blockPlot = nullptr, *m_agreePlot = nullptr;
    ModelSweepPanel* m_sweep = nullptr;
};

} // namespace studio
