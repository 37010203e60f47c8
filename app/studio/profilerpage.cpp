#include "profilerpage.h"

#include "plotstyle.h"

#include "qmpp/error.h"
#include "qmpp/io.h"

#include <QComboBox>
#include <QEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTableView>
#include <QToolBar>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <cmath>
#include <map>
#include <set>

namespace studio {

namespace {

constexpr int kSortRole = Qt::UserRole + 1;

QStandardItem* cell(const QString& text, const QVariant& sort = {}) {
    auto* it = new QStandardItem(text);
    it->setEditable(false);
    it->setData(sort.isValid() ? sort : QVariant(text), kSortRole);
    return it;
}

QStandardItem* number(double v, int digits = 4) {
    return cell(v > 0 || v < 0 ? QString::number(v, 'g', digits) : QStringLiteral("–"), v);
}

bool writeText(const QString& path, const std::string& text, QString* error) {
    try {
        qmpp::writeFileAtomic(path.toStdString(),
                              std::vector<std::uint8_t>(text.begin(), text.end()));
        return true;
    } catch (const std::exception& e) {
        if (error) *error = QString::fromUtf8(e.what());
        return false;
    }
}

} // namespace

QString variantOf(const qmpp::TimingStats& t) {
    return QString::fromStdString(t.version + " " + t.precision);
}

QString kernelLabel(const qmpp::TimingStats& t) {
    QString k = QString::fromStdString(t.kernel);
    if (t.l != 1) k += QStringLiteral(" L%1").arg(t.l);
    return k;
}

ProfilerPage::ProfilerPage(QWidget* parent) : QWidget(parent) {
    auto* v = new QVBoxLayout(this);
    // a tool bar: when the page is narrow, what does not fit moves into its overflow menu
    auto* head = new QToolBar(this);
    auto* open = new QPushButton(tr("Open bench JSON…"), this);
    auto* measure = new QPushButton(tr("Measure on this machine"), this);
    measure->setToolTip(
        tr("Each stage of the pipeline on the current input: the GPU variants when a GPU is "
           "present, the CPU backend otherwise (five runs after a warm-up)"));
    auto* csv = new QPushButton(tr("Export CSV…"), this);
    auto* trace = new QPushButton(tr("Export trace…"), this);
    trace->setToolTip(
        tr("Chrome trace JSON: opens in Perfetto (ui.perfetto.dev) and chrome://tracing"));
    auto* clearAll = new QPushButton(tr("Clear"), this);
    for (QPushButton* b : {open, measure, csv, trace, clearAll})
        head->addWidget(b);
    head->addSeparator();
    head->addWidget(new QLabel(tr("Plots of ")));
    m_file = new QComboBox(this);
    head->addWidget(m_file);
    m_size = new QComboBox(this);
    head->addWidget(m_size);
    head->addWidget(new QLabel(tr(" Size sweep of ")));
    m_kernel = new QComboBox(this);
    head->addWidget(m_kernel);
    m_note = new QLabel(this);
    m_note->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    v->addWidget(head);
    v->addWidget(m_note);

    m_model = new QStandardItemModel(0, ColumnCount, this);
    m_model->setHorizontalHeaderLabels({tr("device"),
                                        tr("kernel"),
                                        tr("version"),
                                        tr("precision"),
                                        tr("N"),
                                        tr("D"),
                                        tr("L"),
                                        tr("K"),
                                        tr("repeats"),
                                        tr("median ms"),
                                        tr("min"),
                                        tr("max"),
                                        tr("p10"),
                                        tr("p90"),
                                        tr("stddev"),
                                        tr("TFLOP/s"),
                                        tr("GB/s"),
                                        tr("max rel. error"),
                                        tr("verified"),
                                        tr("× over basic"),
                                        tr("FP16 × over FP32")});
    m_model->horizontalHeaderItem(MaxRelErr)->setToolTip(
        tr("Largest relative error of the variant against the float64 "
           "reference in `qmpp check` (FP16 within its documented tolerance)"));
    m_proxy = new QSortFilterProxyModel(this);
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(kSortRole);
    m_table = new QTableView(this);
    m_table->setModel(m_proxy);
    m_table->setSortingEnabled(true);
    m_table->verticalHeader()->setVisible(false);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);

    m_tabs = new QTabWidget(this);
    m_bars = makePlot(m_tabs);
    m_speedup = makePlot(m_tabs);
    m_roofline = makePlot(m_tabs);
    m_sweep = makePlot(m_tabs);
    m_tabs->addTab(m_bars, tr("Times"));
    m_tabs->addTab(m_speedup, tr("Speed-ups"));
    m_tabs->addTab(m_roofline, tr("Roofline"));
    m_tabs->addTab(m_sweep, tr("Size sweep"));
    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(m_table);
    split->addWidget(m_tabs);
    split->setStretchFactor(0, 1);
    split->setStretchFactor(1, 2);
    v->addWidget(split, 1);

    connect(open, &QPushButton::clicked, this, [this] {
        const QStringList files = QFileDialog::getOpenFileNames(
            this, tr("Open bench JSON"), QString(), tr("qmpp bench --json (*.json)"));
        for (const QString& f : files) {
            try {
                addFile(f);
            } catch (const std::exception& e) {
                QMessageBox::warning(this, tr("Cannot open timings"), QString::fromUtf8(e.what()));
            }
        }
    });
    connect(measure, &QPushButton::clicked, this, &ProfilerPage::measureRequested);
    connect(csv, &QPushButton::clicked, this, [this] {
        const QString f =
            QFileDialog::getSaveFileName(this, tr("Export CSV"), "timings.csv", tr("CSV (*.csv)"));
        QString error;
        if (!f.isEmpty() && !exportCsv(f, &error))
            QMessageBox::warning(this, tr("Export failed"), error);
    });
    connect(trace, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export trace"), "trace.json",
                                                       tr("Chrome trace (*.json)"));
        QString error;
        if (!f.isEmpty() && !exportTrace(f, &error))
            QMessageBox::warning(this, tr("Export failed"), error);
    });
    connect(clearAll, &QPushButton::clicked, this, &ProfilerPage::clear);
    connect(m_file, &QComboBox::currentIndexChanged, this, [this] {
        refillSizes();
        refreshPlots();
    });
    for (QComboBox* c : {m_size, m_kernel})
        connect(c, &QComboBox::currentIndexChanged, this, [this] { refreshPlots(); });
    changeEvent(nullptr);
}

void ProfilerPage::changeEvent(QEvent* e) {
    if (!e || e->type() == QEvent::PaletteChange)
        for (QCustomPlot* p : {m_bars, m_speedup, m_roofline, m_sweep})
            stylePlot(p, palette());
    if (e) QWidget::changeEvent(e);
}

void ProfilerPage::addFile(const QString& path) {
    qmpp::BenchFile f = qmpp::loadBenchFile(path.toStdString());
    f.name = QFileInfo(path).fileName().toStdString();
    addBench(f);
}

void ProfilerPage::addBench(const qmpp::BenchFile& f) {
    m_files.push_back(f);
    rebuild(); // shows the file just added
}

const qmpp::BenchFile* ProfilerPage::currentFile() const {
    const int i = m_file->currentIndex();
    return i >= 0 && i < int(m_files.size()) ? &m_files[std::size_t(i)] : nullptr;
}

void ProfilerPage::refillSizes() {
    const QSignalBlocker b(m_size);
    const int keep = m_size->currentData().toInt();
    m_size->clear();
    const qmpp::BenchFile* f = currentFile();
    if (!f) return;
    std::set<qmpp::i64> sizes;
    for (const auto& r : f->rows)
        sizes.insert(r.t.n);
    for (auto n : sizes)
        m_size->addItem(QStringLiteral("N = %1").arg(n), int(n));
    const int at = m_size->findData(keep);
    m_size->setCurrentIndex(at >= 0 ? at : 0);
}

void ProfilerPage::clear() {
    m_files.clear();
    rebuild();
}

void ProfilerPage::rebuild() {
    m_model->removeRows(0, m_model->rowCount());
    {
        const QSignalBlocker b1(m_file), b2(m_kernel);
        m_file->clear();
        m_kernel->clear();
    }
    std::set<QString> kernels;
    for (std::size_t fi = 0; fi < m_files.size(); ++fi) {
        const auto& f = m_files[fi];
        const QString source =
            QString::fromStdString(f.device.empty() ? f.name : f.device + " (" + f.name + ")");
        {
            const QSignalBlocker b(m_file);
            m_file->addItem(source);
        }
        for (std::size_t i = 0; i < f.rows.size(); ++i) {
            const auto& r = f.rows[i];
            const auto& t = r.t;
            kernels.insert(QString::fromStdString(t.kernel));
            QList<QStandardItem*> row;
            row << cell(source) << cell(QString::fromStdString(t.kernel))
                << cell(QString::fromStdString(t.version))
                << cell(QString::fromStdString(t.precision))
                << cell(QString::number(t.n), qlonglong(t.n))
                << cell(QString::number(t.d), qlonglong(t.d))
                << cell(QString::number(t.l), qlonglong(t.l))
                << cell(QString::number(t.k), qlonglong(t.k))
                << cell(QString::number(t.repeats), t.repeats);
            // no timing is shown for a variant that failed its check
            if (t.verified)
                row << number(t.median) << number(t.min) << number(t.max) << number(t.p10)
                    << number(t.p90) << number(t.stddev);
            else
                for (int c = Median; c <= StdDev; ++c)
                    row << cell(tr("not timed"), -1.0);
            row << number(t.tflops, 3) << number(t.gbps, 4)
                << (r.maxRelErr >= 0 ? cell(QString::number(r.maxRelErr, 'g', 2), r.maxRelErr)
                                     : cell(QStringLiteral("–"), -1.0))
                << cell(t.verified ? QStringLiteral("✓") : QStringLiteral("✗ failed"),
                        t.verified ? 1 : 0)
                << number(qmpp::speedupOverBasic(f, i), 3) << number(qmpp::speedupFp16(f, i), 3);
            if (!t.verified)
                for (auto* it : row)
                    it->setForeground(QColor(200, 60, 50));
            m_model->appendRow(row);
        }
    }
    {
        const QSignalBlocker b(m_kernel);
        for (const QString& k : kernels)
            m_kernel->addItem(k);
        const int pipe = m_kernel->findText("pipeline");
        if (pipe >= 0) m_kernel->setCurrentIndex(pipe);
    }
    m_note->setText(tr("%1 rows from %2 file(s); click a column to sort")
                        .arg(m_model->rowCount())
                        .arg(m_files.size()));
    {
        const QSignalBlocker b(m_file);
        m_file->setCurrentIndex(int(m_files.size()) - 1); // the newest file
    }
    refillSizes();
    refreshPlots();
}

std::vector<qmpp::TimingStats> ProfilerPage::rows() const {
    std::vector<qmpp::TimingStats> out;
    for (const auto& f : m_files)
        for (const auto& r : f.rows)
            out.push_back(r.t);
    return out;
}

bool ProfilerPage::exportCsv(const QString& path, QString* error) const {
    return writeText(path, qmpp::timingsCsv(rows()), error);
}

bool ProfilerPage::exportTrace(const QString& path, QString* error) const {
    std::string devices;
    for (const auto& f : m_files)
        devices += (devices.empty() ? "" : ", ") + (f.device.empty() ? f.name : f.device);
    return writeText(path, qmpp::chromeTrace(rows(), devices).dump(1) + "\n", error);
}

} // namespace studio
