// The Profiler page: `qmpp bench --json` files (from this machine or others, several at once)
// and live measurements in one sortable table in SPEC's statistics schema, with each variant's
// verification error and mark, speed-ups over the basic version and of FP16 over FP32; plots
// of grouped bars with whiskers, speed-ups, a roofline against the device's measured ceilings
// and size sweeps (time against N, log-log). Exports CSV and Chrome trace JSON.
#pragma once

#include "qmpp/benchfile.h"

#include <QWidget>

class QComboBox;
class QCustomPlot;
class QLabel;
class QSortFilterProxyModel;
class QStandardItemModel;
class QTabWidget;
class QTableView;

namespace studio {

// A bench row's variant ("optimized fp16") and kernel ("entropy L12") as the page labels them.
QString variantOf(const qmpp::TimingStats& t);
QString kernelLabel(const qmpp::TimingStats& t);

class ProfilerPage : public QWidget {
    Q_OBJECT
  public:
    enum Column {
        Source,
        Kernel,
        Version,
        Precision,
        N,
        D,
        L,
        K,
        Repeats,
        Median,
        Min,
        Max,
        P10,
        P90,
        StdDev,
        Tflops,
        Gbps,
        MaxRelErr,
        Verified,
        OverBasic,
        Fp16OverFp32,
        ColumnCount
    };

    explicit ProfilerPage(QWidget* parent = nullptr);

    // Adds a file's rows (a bench file measured here or elsewhere); InputError on a bad file.
    void addFile(const QString& path);
    void addBench(const qmpp::BenchFile& f);
    void clear();
    const std::vector<qmpp::BenchFile>& files() const { return m_files; }

    // The rows shown (all files), as the exports write them.
    std::vector<qmpp::TimingStats> rows() const;
    bool exportCsv(const QString& path, QString* error) const;
    bool exportTrace(const QString& path, QString* error) const;

    QTableView* table() const { return m_table; }
    QSortFilterProxyModel* proxy() const { return m_proxy; }
    QStandardItemModel* model() const { return m_model; }
    QTabWidget* plotTabs() const { return m_tabs; }
    QCustomPlot* barsPlot() const { return m_bars; }
    QCustomPlot* speedupPlot() const { return m_speedup; }
    QCustomPlot* rooflinePlot() const { return m_roofline; }
    QCustomPlot* sweepPlot() const { return m_sweep; }
    QComboBox* fileSelector() const { return m_file; }
    QComboBox* sizeSelector() const { return m_size; }
    QComboBox* kernelSelector() const { return m_kernel; }

  signals:
    // "Measure on this machine" was pressed (the main window runs the measurement).
    void measureRequested();

  protected:
    void changeEvent(QEvent* e) override;

  private:
    // The table and selectors from m_files, showing the newest file.
    void rebuild();
    const qmpp::BenchFile* currentFile() const; // the one the plots show, or null
    void refillSizes();                         // the sizes of the current file
    void refreshPlots();
    void plotBars();
    void plotSpeedups();
    void plotRoofline();
    void plotSweep();

    std::vector<qmpp::BenchFile> m_files;
    QStandardItemModel* m_model;
    QSortFilterProxyModel* m_proxy;
    QTableView* m_table;
    QTabWidget* m_tabs;
    QCustomPlot *m_bars, *m_speedup, *m_roofline, *m_sweep;
    QComboBox *m_file, *m_size, *m_kernel;
    QLabel* m_note;
};

} // namespace studio
