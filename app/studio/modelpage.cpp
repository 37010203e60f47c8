#include "modelpage.h"

#include "modelsweep.h"
#include "plotstyle.h"

#include "qmpp/error.h"
#include "qmpp/evalout.h"
#include "qmpp/report.h"

#include <QComboBox>
#include <QCoreApplication>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QMouseEvent>
#include <QPainter>
#include <QPushButton>
#include <QScrollArea>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace studio {

// The input with its overlay, fitted to the widget; a click reports the patch under it.
class ModelCanvas : public QWidget {
  public:
    explicit ModelCanvas(QWidget* parent) : QWidget(parent) {
        setMinimumSize(160, 160);
        setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
        setCursor(Qt::CrossCursor);
    }
    void setImage(const QImage& img, int grid, int marked) {
        m_img = img;
        m_grid = grid;
        m_marked = marked;
        update();
    }
    const QImage& image() const { return m_img; }
    std::function<void(int)> onPatch;

  protected:
    void paintEvent(QPaintEvent*) override {
        QPainter p(this);
        p.fillRect(rect(), palette().window());
        if (m_img.isNull()) {
            p.drawText(rect(), Qt::AlignCenter, tr("Open a model (File › Open model…)"));
            return;
        }
        const QRect r = target();
        p.drawImage(r, m_img);
        if (m_marked >= 0 && m_grid > 0) {
            const double cell = double(r.width()) / m_grid;
            const QRectF c(r.left() + (m_marked % m_grid) * cell,
                           r.top() + (m_marked / m_grid) * cell, cell, cell);
            p.setPen(QPen(QColor(255, 60, 60), 2));
            p.setBrush(Qt::NoBrush);
            p.drawRect(c);
        }
    }
    void mousePressEvent(QMouseEvent* e) override {
        const QRect r = target();
        if (m_grid <= 0 || !r.contains(e->position().toPoint()) || !onPatch) return;
        const int gx = int((e->position().x() - r.left()) * m_grid / r.width());
        const int gy = int((e->position().y() - r.top()) * m_grid / r.height());
        onPatch(std::clamp(gy, 0, m_grid - 1) * m_grid + std::clamp(gx, 0, m_grid - 1));
    }

  private:
    QRect target() const {
        const int side = std::min(width(), height()) - 8;
        return QRect((width() - side) / 2, (height() - side) / 2, side, side);
    }
    QImage m_img;
    int m_grid = 0, m_marked = -1;
};

namespace {

QDoubleSpinBox* doubleBox(QWidget* parent, double lo, double hi, double step, int decimals,
                          double value) {
    auto* b = new QDoubleSpinBox(parent);
    b->setRange(lo, hi);
    b->setSingleStep(step);
    b->setDecimals(decimals);
    b->setValue(value);
    return b;
}

QString className(const qmpp::VitConfig& c, int k) {
    return k >= 0 && std::size_t(k) < c.classNames.size()
               ? QString::fromStdString(c.classNames[std::size_t(k)])
               : QStringLiteral("class %1").arg(k);
}

} // namespace

QString ModelPage::bundledModelPath(const QString& file) {
    QStringList dirs;
    const QString env = qEnvironmentVariable("QMPP_MODELS");
    if (!env.isEmpty()) dirs << env;
    dirs << QCoreApplication::applicationDirPath() + "/../share/qmpp/models";
#ifdef QMPP_SOURCE_MODELS
    dirs << QStringLiteral(QMPP_SOURCE_MODELS);
#endif
    for (const QString& d : dirs) {
        const QString p = QDir(d).filePath(file);
        if (QFileInfo::exists(p)) return QFileInfo(p).canonicalFilePath();
    }
    return {};
}

QString ModelPage::bundledTestSet() {
    const QString d = QStringLiteral("/usr/share/datasets/fashion-mnist");
    return QFileInfo::exists(d + "/t10k-images-idx3-ubyte.gz") ||
                   QFileInfo::exists(d + "/t10k-images-idx3-ubyte")
               ? d
               : QString();
}

ModelPage::ModelPage(JobOwner* jobs, QWidget* parent) : QWidget(parent), m_jobs(jobs) {
    m_views = new QTabWidget(this);
    m_views->setDocumentMode(true);
    m_views->addTab(buildImageView(), tr("One image"));
    m_sweep = new ModelSweepPanel(jobs, this);
    m_views->addTab(m_sweep, tr("Labelled set"));
    auto* lay = new QVBoxLayout(this);
    lay->setContentsMargins(0, 0, 0, 0);
    lay->addWidget(m_views);
    connect(m_sweep, &ModelSweepPanel::openSetting, this, [this](const qmpp::HookParams& hp) {
        setParams(hp);
        m_views->setCurrentIndex(0);
    });
    connect(m_sweep, &ModelSweepPanel::openItem, this,
            [this](int index, const qmpp::HookParams& hp) {
                m_quiet = true;
                setParams(hp);
                m_quiet = false;
                openSetItem(index);
                m_views->setCurrentIndex(0);
            });
}

ModelPage::~ModelPage() = default;

QWidget* ModelPage::buildImageView() {
    auto* view = new QWidget(this);
    // left: model, input, merge
    auto* left = new QWidget(view);
    auto* ll = new QVBoxLayout(left);
    auto* modelBox = new QGroupBox(tr("Model"), left);
    auto* mf = new QFormLayout(modelBox);
    m_modelName = new QLabel(tr("(none)"), modelBox);
    m_modelName->setWordWrap(true);
    mf->addRow(m_modelName);
    auto* openModelButton = new QPushButton(tr("Open model…"), modelBox);
    mf->addRow(openModelButton);
    connect(openModelButton, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open model"), QString(),
                                                       tr("ViT weights (*.safetensors)"));
        QString err;
        if (!f.isEmpty() && !openModel(f, &err)) fail(err);
    });
    ll->addWidget(modelBox);

    auto* inBox = new QGroupBox(tr("Input"), left);
    auto* inf = new QFormLayout(inBox);
    m_item = new QSpinBox(inBox);
    m_item->setRange(0, 0);
    m_item->setToolTip(tr("Item of the labelled set"));
    inf->addRow(tr("Set item"), m_item);
    connect(m_item, &QSpinBox::valueChanged, this, [this](int i) {
        if (!m_quiet) openSetItem(i);
    });
    auto* openImg = new QPushButton(tr("Open image…"), inBox);
    auto* openSetButton = new QPushButton(tr("Open set…"), inBox);
    auto* row = new QHBoxLayout;
    row->addWidget(openImg);
    row->addWidget(openSetButton);
    inf->addRow(row);
    connect(openImg, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Open image"), QString(),
                                                       tr("Images (*.png *.jpg *.jpeg *.bmp)"));
        QString err;
        if (!f.isEmpty() && !openImage(f, &err)) fail(err);
    });
    connect(openSetButton, &QPushButton::clicked, this, [this] {
        const QString d = QFileDialog::getExistingDirectory(
            this, tr("Open a labelled set: images in one subfolder per class, or an IDX folder"));
        if (d.isEmpty()) return;
        const bool idx = QFileInfo::exists(d + "/t10k-images-idx3-ubyte.gz") ||
                         QFileInfo::exists(d + "/t10k-images-idx3-ubyte");
        QString err;
        if (!openSet(d, idx, 2000, &err)) fail(err);
    });
    m_imageInfo = new QLabel(inBox);
    m_imageInfo->setWordWrap(true);
    inf->addRow(m_imageInfo);
    ll->addWidget(inBox);

    auto* mergeBox = new QGroupBox(tr("Merge inside the model"), left);
    auto* f = new QFormLayout(mergeBox);
    m_method = new QComboBox(mergeBox);
    m_method->addItems({"none", "quickmerge", "tome", "topk", "random"});
    m_method->setCurrentIndex(1);
    f->addRow(tr("Method"), m_method);
    m_mode = new QComboBox(mergeBox);
    m_mode->addItems({tr("r per block"), tr("budget at a block")});
    f->addRow(tr("Schedule"), m_mode);
    m_r = new QSpinBox(mergeBox);
    m_r->setRange(0, 512);
    m_r->setValue(8);
    m_r->setToolTip(tr("Tokens each block merges away"));
    f->addRow(tr("r"), m_r);
    m_budget = doubleBox(mergeBox, 0.01, 1.0, 0.05, 2, 0.25);
    m_budget->setToolTip(tr("Fraction of the tokens kept, once, at the block below"));
    f->addRow(tr("Budget"), m_budget);
    m_atBlock = new QSpinBox(mergeBox);
    m_atBlock->setRange(0, 0);
    f->addRow(tr("At block"), m_atBlock);
    m_tau = doubleBox(mergeBox, 0.001, 10.0, 0.05, 3, 0.1);
    f->addRow(tr("τ (temperature)"), m_tau);
    m_eps = doubleBox(mergeBox, 0.0, 1.0, 0.005, 3, 0.01);
    f->addRow(tr("ε"), m_eps);
    m_gumbel = doubleBox(mergeBox, 0.0, 10.0, 0.1, 2, 1.0);
    m_gumbel->setToolTip(tr("Gumbel noise scale; 0 is deterministic"));
    f->addRow(tr("Gumbel scale"), m_gumbel);
    m_seed = new QSpinBox(mergeBox);
    m_seed->setRange(0, 1 << 30);
    f->addRow(tr("Seed"), m_seed);
    ll->addWidget(mergeBox);

    auto* ovBox = new QGroupBox(tr("Overlay"), left);
    auto* of = new QFormLayout(ovBox);
    m_overlay = new QComboBox(ovBox);
    m_overlay->addItems(modelOverlayNames());
    m_overlay->setCurrentIndex(int(ModelOverlay::Sources));
    of->addRow(m_overlay);
    m_fusion = new QComboBox(ovBox);
    m_fusion->addItems({"mean", "max", "min"});
    m_fusion->setToolTip(tr("How rollout fuses the heads"));
    of->addRow(tr("Rollout heads"), m_fusion);
    m_discard = doubleBox(ovBox, 0.0, 0.99, 0.05, 2, 0.9);
    m_discard->setToolTip(tr("Rollout: the fraction of the smallest attention entries dropped"));
    of->addRow(tr("Discard ratio"), m_discard);
    m_head = new QComboBox(ovBox);
    m_head->setToolTip(tr("The clicked token's attention: one head, or their mean"));
    of->addRow(tr("Head"), m_head);
    auto* hint = new QLabel(tr("Click the image: that token's attention."), ovBox);
    hint->setWordWrap(true);
    hint->setStyleSheet("color: gray");
    of->addRow(hint);
    ll->addWidget(ovBox);
    ll->addStretch(1);
    auto* scroll = new QScrollArea(view);
    scroll->setWidget(left);
    scroll->setWidgetResizable(true);
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    scroll->setMinimumWidth(180);
    scroll->setMaximumWidth(left->minimumSizeHint().width() + 24);

    for (QSpinBox* b : {m_r, m_atBlock, m_seed})
        connect(b, &QSpinBox::valueChanged, this, &ModelPage::paramsChanged);
    for (QDoubleSpinBox* b : {m_budget, m_tau, m_eps, m_gumbel})
        connect(b, &QDoubleSpinBox::valueChanged, this, &ModelPage::paramsChanged);
    connect(m_method, &QComboBox::currentIndexChanged, this, &ModelPage::paramsChanged);
    connect(m_mode, &QComboBox::currentIndexChanged, this, [this](int mode) {
        setScheduleMode(mode);
        paramsChanged();
    });
    setScheduleMode(0);

    // centre: overlay controls, canvas, correlations
    auto* centre = new QWidget(view);
    auto* cl = new QVBoxLayout(centre);
    auto* bar = new QHBoxLayout;
    m_blockLabel = new QLabel(centre);
    bar->addWidget(m_blockLabel);
    m_blockSlider = new QSlider(Qt::Horizontal, centre);
    m_blockSlider->setRange(0, 0);
    bar->addWidget(m_blockSlider, 1);
    cl->addLayout(bar);
    m_canvas = new ModelCanvas(centre);
    m_canvas->onPatch = [this](int p) { clickPatch(p); };
    cl->addWidget(m_canvas, 1);
    m_corrText = new QLabel(centre);
    m_corrText->setWordWrap(true);
    cl->addWidget(m_corrText);
    connect(m_overlay, &QComboBox::currentIndexChanged, this, [this] { refreshOverlay(); });
    connect(m_blockSlider, &QSlider::valueChanged, this, [this] { refreshOverlay(); });
    connect(m_head, &QComboBox::currentIndexChanged, this, [this] { refreshOverlay(); });
    auto rollAgain = [this] {
        if (!m_shown || !m_model) return;
        qmpp::HeadFusion hf = qmpp::HeadFusion::Mean;
        qmpp::parse(m_fusion->currentText().toStdString(), hf);
        m_shown->rollout = qmpp::rollout(m_shown->trace, config(*m_model).heads,
                                         config(*m_model).patches, hf, m_discard->value());
        m_shown->agreement =
            qmpp::saliencyAgreement(m_shown->trace, config(*m_model).heads, m_shown->rollout);
        plotAgreement();
        refreshOverlay();
    };
    connect(m_fusion, &QComboBox::currentIndexChanged, this, rollAgain);
    connect(m_discard, &QDoubleSpinBox::valueChanged, this, rollAgain);

    // right: prediction, blocks, agreement
    auto* right = new QSplitter(Qt::Vertical, view);
    auto* predBox = new QWidget(right);
    auto* pl = new QVBoxLayout(predBox);
    pl->setContentsMargins(0, 0, 0, 0);
    m_predText = new QLabel(predBox);
    m_predText->setWordWrap(true);
    pl->addWidget(m_predText);
    m_predPlot = makePlot(predBox);
    pl->addWidget(m_predPlot, 1);
    right->addWidget(predBox);
    m_blockPlot = makePlot(right);
    right->addWidget(m_blockPlot);
    m_agreePlot = makePlot(right);
    right->addWidget(m_agreePlot);
    right->setMinimumWidth(160);
    for (QCustomPlot* p : {m_predPlot, m_blockPlot, m_agreePlot})
        p->setMinimumHeight(110);
    right->setStretchFactor(0, 4);
    right->setStretchFactor(1, 4);
    right->setStretchFactor(2, 3);

    auto* split = new QSplitter(Qt::Horizontal, view);
    split->addWidget(centre);
    split->addWidget(right);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* lay = new QHBoxLayout(view);
    lay->addWidget(scroll);
    lay->addWidget(split, 1);
    return view;
}

void ModelPage::setScheduleMode(int mode) {
    const bool budget = mode == 1;
    m_r->setEnabled(!budget);
    m_budget->setEnabled(budget);
    m_atBlock->setEnabled(budget);
}

void ModelPage::fail(const QString& what) {
    m_imageInfo->setText(
        QStringLiteral("<span style='color:#d04030'>%1</span>").arg(what.toHtmlEscaped()));
    emit message(what);
}

const qmpp::VitConfig* ModelPage::modelConfig() const {
    return m_model ? &config(*m_model) : nullptr;
}

bool ModelPage::openModel(const QString& path, QString* error) {
    std::shared_ptr<const qmpp::VitModel> m;
    try {
        m = qmpp::loadVit(path.toStdString());
    } catch (const std::exception& e) {
        if (error) *error = QString::fromUtf8(e.what());
        return false;
    }
    const qmpp::VitConfig& c = config(*m);
    const bool sameInput = m_model && config(*m_model).imageSize == c.imageSize &&
                           config(*m_model).channels == c.channels;
    m_model = m;
    m_modelPath = path;
    m_plain.reset();
    m_shown.reset();
    m_modelName->setText(tr("<b>%1</b><br>%2 blocks, D %3, %4 heads, %5×%5 input, patch %6, %7 "
                            "classes")
                             .arg(QString::fromStdString(c.name).toHtmlEscaped())
                             .arg(c.depth)
                             .arg(c.dim)
                             .arg(c.heads)
                             .arg(c.imageSize)
                             .arg(c.patch)
                             .arg(c.classes));
    m_modelName->setToolTip(path);
    m_quiet = true;
    m_atBlock->setRange(0, int(c.depth - 1));
    m_blockSlider->setRange(0, int(c.depth - 1));
    m_head->clear();
    m_head->addItem(tr("mean"));
    for (qmpp::i64 h = 0; h < c.heads; ++h)
        m_head->addItem(QString::number(h));
    m_quiet = false;
    if (!sameInput) {
        m_set.reset();
        m_pixels.reset();
    }
    m_sweep->setSource(m_model, m_set, QFileInfo(m_setPath).fileName());
    emit sourceChanged();
    // the bundled set, as many images as fit in 64 MiB (500 of the bundled model's 56 x 56)
    const qmpp::i64 perImage = c.channels * c.imageSize * c.imageSize * qmpp::i64(sizeof(float));
    const qmpp::i64 fit =
        std::clamp<qmpp::i64>((qmpp::i64(64) << 20) / std::max<qmpp::i64>(perImage, 1), 16, 500);
    if (!m_set && openBundledSet(fit)) return true; // it shows its first item
    if (m_pixels)
        rerun();
    else if (m_set && m_set->count > 0)
        openSetItem(0);
    return true;
}

bool ModelPage::openBundledModel(QString* error) {
    const QString p = bundledModelPath();
    if (p.isEmpty()) {
        if (error) *error = tr("The bundled model vit-fmnist.safetensors was not found");
        return false;
    }
    return openModel(p, error);
}

bool ModelPage::openSet(const QString& path, bool dataset, qmpp::i64 limit, QString* error) {
    if (!m_model) {
        if (error) *error = tr("Open a model first");
        return false;
    }
    try {
        m_set = std::make_shared<const qmpp::EvalItems>(
            qmpp::loadEvalItems(path.toStdString(), config(*m_model), dataset, limit));
    } catch (const std::exception& e) {
        if (error) *error = QString::fromUtf8(e.what());
        return false;
    }
    m_setPath = path;
    m_sweep->setSource(m_model, m_set, QFileInfo(path).fileName());
    emit sourceChanged();
    m_quiet = true;
    m_item->setRange(0, int(std::max<qmpp::i64>(m_set->count - 1, 0)));
    m_quiet = false;
    return m_set->count == 0 || openSetItem(0);
}

bool ModelPage::openBundledSet(qmpp::i64 limit, QString* error) {
    const QString d = bundledTestSet();
    if (d.isEmpty()) {
        if (error)
            *error =
                tr("The Fashion-MNIST test set is not installed (Debian: dataset-fashion-mnist)");
        return false;
    }
    return openSet(d, true, limit, error);
}

bool ModelPage::openSetItem(int index) {
    if (!m_model || !m_set || index < 0 || index >= m_set->count) return false;
    const qmpp::VitConfig& c = config(*m_model);
    const qmpp::i64 each = c.channels * c.imageSize * c.imageSize;
    m_pixels = std::make_shared<const std::vector<float>>(
        m_set->pixels.begin() + index * each, m_set->pixels.begin() + (index + 1) * each);
    m_imageName = QString::fromStdString(m_set->names[std::size_t(index)]);
    m_imageLabel = int(m_set->labels[std::size_t(index)]);
    ++m_imageSerial;
    m_quiet = true;
    m_item->setValue(index);
    m_quiet = false;
    m_imageInfo->setText(tr("%1<br>label: %2")
                             .arg(m_imageName.toHtmlEscaped(),
                                  m_imageLabel >= 0 ? className(c, m_imageLabel) : tr("unknown")));
    rerun();
    return true;
}

bool ModelPage::openImage(const QString& path, QString* error) {
    if (!m_model) {
        if (error) *error = tr("Open a model first");
        return false;
    }
    try {
        const qmpp::EvalItems one =
            qmpp::loadEvalItems(path.toStdString(), config(*m_model), false, 1);
        if (one.count != 1) throw qmpp::InputError(path.toStdString() + ": not an image");
        m_pixels = std::make_shared<const std::vector<float>>(one.pixels);
    } catch (const std::exception& e) {
        if (error) *error = QString::fromUtf8(e.what());
        return false;
    }
    m_imageName = path;
    m_imageLabel = -1;
    ++m_imageSerial;
    m_imageInfo->setText(QFileInfo(path).fileName().toHtmlEscaped());
    rerun();
    return true;
}

qmpp::HookParams ModelPage::params() const {
    qmpp::HookParams hp;
    qmpp::parse(m_method->currentText().toStdString(), hp.method);
    if (hp.method != qmpp::ModelMethod::None)
        hp.schedule = m_mode->currentIndex() == 1
                          ? qmpp::budgetSchedule(m_budget->value(), m_atBlock->value())
                          : qmpp::constantSchedule(m_r->value());
    hp.temperature = m_tau->value();
    hp.epsilon = m_eps->value();
    hp.gumbelScale = m_gumbel->value();
    hp.seed = std::uint64_t(m_seed->value());
    return hp;
}

void ModelPage::setParams(const qmpp::HookParams& hp) {
    const bool quiet = m_quiet;
    m_quiet = true;
    m_method->setCurrentText(QString::fromLatin1(qmpp::toString(hp.method)));
    const bool budget = hp.schedule.kind == qmpp::Schedule::Kind::Budget;
    m_mode->setCurrentIndex(budget ? 1 : 0);
    setScheduleMode(budget ? 1 : 0);
    if (budget) {
        m_budget->setValue(hp.schedule.budget);
        m_atBlock->setValue(int(hp.schedule.atBlock));
    } else if (hp.schedule.kind != qmpp::Schedule::Kind::None) {
        m_r->setValue(int(hp.schedule.r));
    }
    m_tau->setValue(hp.temperature);
    m_eps->setValue(hp.epsilon);
    m_gumbel->setValue(hp.gumbelScale);
    m_seed->setValue(int(hp.seed));
    m_quiet = quiet;
    paramsChanged();
}

void ModelPage::paramsChanged() {
    if (m_quiet) return;
    m_sweep->setBase(params());
    rerun();
}

quint64 ModelPage::rerun() {
    if (!m_model || !m_pixels) return 0;
    const qmpp::HookParams hp = params();
    auto model = m_model;
    auto pixels = m_pixels;
    const quint64 serial = m_imageSerial;
    auto plain = m_plainSerial == serial ? m_plain : nullptr;
    qmpp::HeadFusion hf = qmpp::HeadFusion::Mean;
    qmpp::parse(m_fusion->currentText().toStdString(), hf);
    const double discard = m_discard->value();
    const QString image = m_imageName;
    return m_jobs->start(
        QStringLiteral("model"),
        tr("Model: %1 %2")
            .arg(qmpp::toString(hp.method), QString::fromStdString(hp.schedule.describe())),
        [this, hp, model, pixels, serial, plain, hf, discard,
         image](JobContext& c) -> JobOwner::Then {
            auto out = std::make_shared<Shown>();
            out->hp = hp;
            out->image = image;
            const qmpp::VitConfig& cfg = config(*model);
            if (plain) {
                out->plain = *plain;
            } else {
                qmpp::ForwardOptions po;
                po.keepSources = true;
                out->plain = qmpp::vitForward(*model, pixels->data(), qmpp::HookParams{}, 0, po);
            }
            c.check();
            qmpp::ForwardOptions opt;
            opt.trace = &out->trace;
            out->merged = qmpp::vitForward(*model, pixels->data(), hp, 0, opt);
            c.check();
            out->rollout = qmpp::rollout(out->trace, cfg.heads, cfg.patches, hf, discard);
            out->agreement = qmpp::saliencyAgreement(out->trace, cfg.heads, out->rollout);
            return [this, out, serial, model] {
                if (model != m_model || serial != m_imageSerial) return; // stale
                if (m_plainSerial != serial) {
                    m_plain = std::make_shared<const qmpp::ForwardResult>(out->plain);
                    m_plainSerial = serial;
                }
                m_shown.reset(new Shown(std::move(*out)));
                ++m_shownCount;
                showShown();
            };
        });
}

void ModelPage::showShown() {
    plotPrediction();
    plotBlocks();
    plotAgreement();
    refreshOverlay();
}

void ModelPage::setOverlay(ModelOverlay o) {
    m_overlay->setCurrentIndex(int(o));
}
ModelOverlay ModelPage::overlay() const {
    return ModelOverlay(m_overlay->currentIndex());
}
void ModelPage::setBlock(int block) {
    m_blockSlider->setValue(block);
}
int ModelPage::block() const {
    return m_blockSlider->value();
}
void ModelPage::setFusion(qmpp::HeadFusion f) {
    m_fusion->setCurrentText(QString::fromLatin1(qmpp::toString(f)));
}
void ModelPage::setDiscard(double ratio) {
    m_discard->setValue(ratio);
}
void ModelPage::setHead(int head) {
    m_head->setCurrentIndex(head + 1);
}
void ModelPage::clickPatch(int patch) {
    m_patch = patch;
    if (overlay() != ModelOverlay::HeadAttention) setOverlay(ModelOverlay::HeadAttention);
    refreshOverlay();
}

void ModelPage::writeReportSection(const QString& dir) const {
    if (!m_model) return;
    const qmpp::VitConfig& c = config(*m_model);
    if (m_shown && m_pixels) {
        qmpp::EvalItems one;
        one.count = 1;
        one.pixels = *m_pixels;
        one.labels = {m_imageLabel};
        one.names = {m_imageName.toStdString()};
        one.source = m_imageName.toStdString();
        const qmpp::EvalRun run = qmpp::evaluate(*m_model, one, m_shown->hp, {m_shown->hp.seed});
        qmpp::OutputDir out((dir + "/model").toStdString(), true);
        qmpp::writeEvalFiles(out.tempDir(), run, c, one, m_shown->hp, m_modelPath.toStdString());
        qmpp::writeEvalOverlays(out.tempDir(), *m_model, one, m_shown->hp, 1);
        out.commit();
    }
    const auto& pts = m_sweep->points();
    if (!pts.empty() && m_set) {
        std::vector<qmpp::SweepPoint> sp;
        for (const auto& p : pts)
            sp.push_back({p.method.toStdString(), p.setting, p.run});
        const bool budget = pts.front().hp.schedule.kind == qmpp::Schedule::Kind::Budget;
        qmpp::OutputDir out((dir + "/model-sweep").toStdString(), true);
        qmpp::writeSweepFiles(out.tempDir(), sp, budget, m_set->hasLabels());
        out.commit();
    }
}

QImage ModelPage::overlayImage() const {
    return m_canvas->image();
}

void ModelPage::refreshOverlay() {
    if (!m_model) return;
    const qmpp::VitConfig& c = config(*m_model);
    const int b = block();
    m_blockLabel->setText(tr("Block %1 (0–%2)").arg(b).arg(c.depth - 1));
    m_fusion->setEnabled(overlay() == ModelOverlay::Rollout);
    m_discard->setEnabled(overlay() == ModelOverlay::Rollout);
    m_head->setEnabled(overlay() == ModelOverlay::HeadAttention);
    if (!m_shown || !m_pixels) return;
    const QImage input = modelInputImage(c, m_pixels->data());
    const int scale = std::max(1, int(448 / std::max<qmpp::i64>(c.imageSize, 1)));
    const int grid = int(c.grid);
    QImage img;
    const ModelOverlay o = overlay();
    const bool haveBlock = b < int(m_shown->trace.blocks.size());
    if (o == ModelOverlay::Input || !haveBlock) {
        img = input.scaled(input.width() * scale, input.height() * scale);
    } else if (o == ModelOverlay::Sources) {
        img = sourcesImage(input, m_shown->trace.blocks[std::size_t(b)].owner, grid, scale);
    } else {
        const int head = m_head->currentIndex() - 1;
        const int patch = m_patch >= 0 ? m_patch : int(c.patches / 2);
        img =
            heatImage(input, overlayValues(o, m_shown->trace, m_shown->rollout, c, b, patch, head),
                      grid, scale, 0.6);
    }
    m_canvas->setImage(
        img, grid,
        o == ModelOverlay::HeadAttention ? (m_patch >= 0 ? m_patch : int(c.patches / 2)) : -1);
    if (haveBlock) {
        const qmpp::BlockTrace& bt = m_shown->trace.blocks[std::size_t(b)];
        auto fmt = [](double v) {
            return std::isnan(v) ? QStringLiteral("–") : QString::number(v, 'f', 3);
        };
        m_corrText->setText(
            tr("Block %1: %2 tokens enter, %3 leave. Does the saliency mean anything? Spearman ρ "
               "of "
               "QuickMerge++'s saliency with the class token's attention: <b>%4</b>; with "
               "attention rollout: <b>%5</b>.")
                .arg(b)
                .arg(bt.tokens)
                .arg(bt.tokensOut)
                .arg(fmt(m_shown->agreement.withClassAttention[std::size_t(b)]))
                .arg(fmt(m_shown->agreement.withRollout[std::size_t(b)])));
    }
}

void ModelPage::plotPrediction() {
    QCustomPlot* p = m_predPlot;
    p->clearPlottables();
    stylePlot(p, palette());
    const qmpp::VitConfig& c = config(*m_model);
    const auto plain = topProbabilities(m_shown->plain.logits, 5);
    const auto merged = topProbabilities(m_shown->merged.logits, 5);
    // the classes in either top 5, in the unmerged model's order
    QVector<int> classes;
    for (const auto& [k, v] : plain)
        classes << k;
    for (const auto& [k, v] : merged)
        if (!classes.contains(k)) classes << k;
    auto probsOf = [&](const std::vector<float>& logits) {
        const auto all = topProbabilities(logits, int(logits.size()));
        std::vector<double> out(logits.size(), 0.0);
        for (const auto& [k, v] : all)
            out[std::size_t(k)] = v;
        return out;
    };
    const std::vector<double> pp = probsOf(m_shown->plain.logits);
    const std::vector<double> pm = probsOf(m_shown->merged.logits);
    QVector<double> ticks, vp, vm;
    QVector<QString> names;
    for (int i = 0; i < classes.size(); ++i) {
        const int at = classes.size() - i; // most probable on top
        ticks << at;
        names << className(c, classes[i]);
        vp << 100.0 * pp[std::size_t(classes[i])];
        vm << 100.0 * pm[std::size_t(classes[i])];
    }
    auto* group = new QCPBarsGroup(p);
    auto bars = [&](const QVector<double>& v, const QString& name, const QColor& col) {
        auto* b = new QCPBars(p->yAxis, p->xAxis);
        b->setData(ticks, v);
        b->setName(name);
        b->setBrush(col);
        b->setPen(col.darker(130));
        b->setWidth(0.38);
        b->setBarsGroup(group);
    };
    bars(vp, tr("unmerged"), QColor(0x99, 0x99, 0x99));
    bars(vm, tr("merged: %1").arg(qmpp::toString(m_shown->hp.method)),
         methodColour(qmpp::toString(m_shown->hp.method)));
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    ticker->addTicks(ticks, names);
    p->yAxis->setTicker(ticker);
    p->yAxis->setRange(0.4, classes.size() + 0.6);
    p->xAxis->setRange(0, 100);
    p->xAxis->setLabel(tr("probability (%)"));
    legendBelow(p, 2);
    const int pk = plain.front().first, mk = merged.front().first;
    const QString truth =
        m_imageLabel >= 0 ? tr(" · label %1").arg(className(c, m_imageLabel)) : QString();
    m_predText->setText(tr("<b>Unmerged</b>: %1 (%2 %) · <b>merged</b>: %3 (%4 %)%5%6")
                            .arg(className(c, pk))
                            .arg(100.0 * plain.front().second, 0, 'f', 1)
                            .arg(className(c, mk))
                            .arg(100.0 * merged.front().second, 0, 'f', 1)
                            .arg(truth)
                            .arg(pk != mk ? tr(" · <span style='color:#d04030'>the merge changed "
                                               "the model's mind</span>")
                                          : QString()));
    replotWhenShown(p);
}

void ModelPage::plotBlocks() {
    // tokens and FLOPs as a share of the unmerged model's (left), this run's time (right)
    QCustomPlot* p = m_blockPlot;
    p->clearPlottables();
    stylePlot(p, palette());
    const auto& mb = m_shown->merged.blocks;
    const auto& pb = m_shown->plain.blocks;
    QVector<double> x, tokens, flops, ms;
    for (std::size_t l = 0; l < mb.size() && l < pb.size(); ++l) {
        x << double(l);
        tokens << 100.0 * double(mb[l].tokensOut) / double(pb[l].tokensOut);
        flops << 100.0 * mb[l].flops / pb[l].flops;
        ms << (l < m_shown->trace.blocks.size() ? m_shown->trace.blocks[l].ms : 0.0);
    }
    const QColor col = methodColour(qmpp::toString(m_shown->hp.method));
    auto* bars = new QCPBars(p->xAxis, p->yAxis);
    bars->setData(x, tokens);
    bars->setName(tr("tokens left"));
    bars->setBrush(col);
    bars->setPen(col.darker(130));
    bars->setWidth(0.6);
    auto* gf = p->addGraph(p->xAxis, p->yAxis);
    gf->setData(x, flops);
    gf->setName(tr("FLOPs"));
    gf->setPen(QPen(p->xAxis->labelColor(), 2));
    gf->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 6));
    p->yAxis2->setVisible(true);
    auto* gt = p->addGraph(p->xAxis, p->yAxis2);
    gt->setData(x, ms);
    gt->setName(tr("ms (right)"));
    gt->setPen(QPen(seriesColour(2), 2, Qt::DashLine));
    gt->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssSquare, 5));
    p->xAxis->setLabel(tr("block"));
    p->yAxis->setLabel(tr("% of unmerged"));
    p->yAxis2->setLabel(tr("ms"));
    p->xAxis->setRange(-0.6, double(x.size()) - 0.4);
    p->yAxis->setRange(0, 110);
    p->yAxis2->setRange(0, (ms.isEmpty() ? 1.0 : *std::max_element(ms.begin(), ms.end())) * 1.2 +
                               1e-9);
    legendBelow(p, 3);
    replotWhenShown(p);
}

void ModelPage::plotAgreement() {
    QCustomPlot* p = m_agreePlot;
    p->clearGraphs();
    stylePlot(p, palette());
    const auto& a = m_shown->agreement;
    auto graph = [&](const std::vector<double>& v, const QString& name, int colour) {
        QVector<double> x, y;
        for (std::size_t l = 0; l < v.size(); ++l)
            if (!std::isnan(v[l])) x << double(l), y << v[l];
        auto* g = p->addGraph();
        g->setData(x, y);
        g->setName(name);
        g->setPen(QPen(seriesColour(colour), 2));
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
    };
    graph(a.withClassAttention, tr("vs class attention"), 0);
    graph(a.withRollout, tr("vs rollout"), 3);
    p->xAxis->setLabel(tr("block"));
    p->yAxis->setLabel(tr("ρ of saliency"));
    p->xAxis->setRange(-0.5, double(a.withRollout.size()) - 0.5);
    p->yAxis->setRange(-1.05, 1.05);
    legendBelow(p, 2);
    replotWhenShown(p);
}

} // namespace studio
